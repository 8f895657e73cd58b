# azure-route-server: seed 003. A virtual machine scale set of NVAs, each
# running baton with BGP steering and no peer section: every healthy
# instance announces the prefixes to the Azure Route Server with next-hop
# self and withdraws them while its check fails, in maintenance, or before
# a planned host event (Azure Scheduled Events, read from the instance
# metadata service: no webhook needed). The route server spreads traffic
# over the announcing instances (ECMP).
#
# The route server peers only with addresses it has a BGP connection for.
# One small host runs `baton peerings` (baton-peerings.service): it adds a
# connection for every instance of the scale set and removes the ones of
# instances that left, on an interval and at once on an Event Grid event
# for the scale set (delivered to its webhook, port 8450). Its managed
# identity holds exactly the actions `baton policy` prints for a
# bgp.peerings section.

terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 4.0"
    }
  }
}

locals {
  # The baton configurations this module renders: every instance of the
  # scale set shares one (node.name empty: the host name), the reconciler
  # host has its own.
  nodes = {
    nva      = { role = "nva", name = "" }
    peerings = { role = "peerings", name = "${var.name}-peerings" }
  }
  webhook = var.webhook_tls_cert != ""
  hub_asn = 65515 # Azure Route Server's ASN, fixed
  template = {
    route_server_ips    = azurerm_route_server.rs.virtual_router_ips
    subscription_id     = data.azurerm_client_config.current.subscription_id
    resource_group_name = var.resource_group_name
    name                = var.name
    asn                 = var.asn
    prefixes            = var.prefixes
    check_command       = var.check_command
    peerings_interval   = var.peerings_interval
    webhook_tls_cert    = var.webhook_tls_cert
  }
}

data "azurerm_client_config" "current" {}

data "azurerm_resource_group" "rg" {
  name = var.resource_group_name
}

resource "azurerm_public_ip" "route_server" {
  name                = "${var.name}-rs"
  location            = var.location
  resource_group_name = var.resource_group_name
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_route_server" "rs" {
  name                             = "${var.name}-rs"
  location                         = var.location
  resource_group_name              = var.resource_group_name
  sku                              = "Standard"
  public_ip_address_id             = azurerm_public_ip.route_server.id
  subnet_id                        = var.route_server_subnet_id
  branch_to_branch_traffic_enabled = false
}

# The NVAs. Each boots with user-data.tftpl: installs the .deb, writes
# /etc/baton/baton.yaml (bgp active-active, no peer) and starts baton.
resource "azurerm_linux_virtual_machine_scale_set" "nva" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  sku                 = var.vm_size
  instances           = var.instances
  admin_username      = var.admin_username
  zones               = ["1", "2", "3"]
  upgrade_mode        = "Manual"
  admin_ssh_key {
    username   = var.admin_username
    public_key = var.admin_ssh_public_key
  }
  network_interface {
    name                      = "nva"
    primary                   = true
    ip_forwarding_enabled     = true
    network_security_group_id = azurerm_network_security_group.nva.id
    ip_configuration {
      name      = "nva"
      primary   = true
      subnet_id = var.nva_subnet_id
    }
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
  }
  source_image_reference {
    publisher = "Debian"
    offer     = "debian-12"
    sku       = "12-gen2"
    version   = "latest"
  }
  # The instance's own health for the platform (and for the peerings
  # reconciler's view in the portal): baton's HA check port answers 200
  # while the instance announces, 503 otherwise.
  extension {
    name                       = "health"
    publisher                  = "Microsoft.ManagedServices"
    type                       = "ApplicationHealthLinux"
    type_handler_version       = "1.0"
    auto_upgrade_minor_version = true
    settings                   = jsonencode({ protocol = "http", port = 8444, requestPath = "/" })
  }
  # Templates get node (one of local.nodes) and the module's inputs under
  # their own names; the test renders them the same way.
  custom_data = base64encode(templatefile("${path.module}/user-data.tftpl", merge(local.template, {
    node            = local.nodes.nva
    baton_yaml      = templatefile("${path.module}/baton.yaml.tftpl", merge(local.template, { node = local.nodes.nva }))
    baton_deb_url   = var.baton_deb_url
    webhook_token   = ""
    webhook_tls_key = ""
  })))
}

# The reconciler host: baton peerings with the webhook on 8450.
resource "azurerm_public_ip" "peerings" {
  name                = "${var.name}-peerings"
  location            = var.location
  resource_group_name = var.resource_group_name
  allocation_method   = "Static"
  sku                 = "Standard"
  domain_name_label   = var.webhook_dns_label
}

resource "azurerm_network_interface" "peerings" {
  name                = "${var.name}-peerings"
  location            = var.location
  resource_group_name = var.resource_group_name
  ip_configuration {
    name                          = "peerings"
    subnet_id                     = var.nva_subnet_id
    private_ip_address_allocation = "Dynamic"
    public_ip_address_id          = azurerm_public_ip.peerings.id
  }
}

resource "azurerm_user_assigned_identity" "peerings" {
  name                = "${var.name}-peerings"
  location            = var.location
  resource_group_name = var.resource_group_name
}

# The actions of `baton policy --cloud azure` for the bgp.peerings section
# below: read the route server (a virtual hub), manage its BGP
# connections, list the scale set's NICs.
resource "azurerm_role_definition" "peerings" {
  name  = "${var.name}-baton-peerings"
  scope = data.azurerm_resource_group.rg.id
  permissions {
    actions = [
      "Microsoft.Compute/virtualMachineScaleSets/networkInterfaces/read",
      "Microsoft.Network/virtualHubs/bgpConnections/delete",
      "Microsoft.Network/virtualHubs/bgpConnections/read",
      "Microsoft.Network/virtualHubs/bgpConnections/write",
      "Microsoft.Network/virtualHubs/read",
    ]
  }
  assignable_scopes = [data.azurerm_resource_group.rg.id]
}

resource "azurerm_role_assignment" "peerings" {
  scope              = data.azurerm_resource_group.rg.id
  role_definition_id = azurerm_role_definition.peerings.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.peerings.principal_id
}

resource "azurerm_linux_virtual_machine" "peerings" {
  name                  = "${var.name}-peerings"
  location              = var.location
  resource_group_name   = var.resource_group_name
  size                  = var.peerings_vm_size
  admin_username        = var.admin_username
  network_interface_ids = [azurerm_network_interface.peerings.id]
  admin_ssh_key {
    username   = var.admin_username
    public_key = var.admin_ssh_public_key
  }
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.peerings.id]
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Standard_LRS"
  }
  source_image_reference {
    publisher = "Debian"
    offer     = "debian-12"
    sku       = "12-gen2"
    version   = "latest"
  }
  custom_data = base64encode(templatefile("${path.module}/user-data.tftpl", merge(local.template, {
    node            = local.nodes.peerings
    baton_yaml      = templatefile("${path.module}/baton.yaml.tftpl", merge(local.template, { node = local.nodes.peerings }))
    baton_deb_url   = var.baton_deb_url
    webhook_token   = var.webhook_token
    webhook_tls_key = var.webhook_tls_key
  })))
}

# Scale-set changes (instances added, removed, reimaged) trigger a round
# at once. Event Grid validates the endpoint when the subscription is
# created, so the host must already answer: apply once with
# subscribe_events = false, then again with true (README).
resource "azurerm_eventgrid_event_subscription" "scale_set" {
  count = local.webhook && var.subscribe_events ? 1 : 0
  name  = "${var.name}-baton-peerings"
  scope = data.azurerm_resource_group.rg.id
  included_event_types = [
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceDeleteSuccess",
    "Microsoft.Resources.ResourceActionSuccess",
  ]
  subject_filter {
    subject_begins_with = "${data.azurerm_resource_group.rg.id}/providers/Microsoft.Compute/virtualMachineScaleSets/${var.name}"
  }
  webhook_endpoint {
    url                  = "https://${azurerm_public_ip.peerings.fqdn}:8450/?token=${var.webhook_token}"
    max_events_per_batch = 1
  }
  retry_policy {
    max_delivery_attempts = 10
    event_time_to_live    = 60
  }
  depends_on = [azurerm_linux_virtual_machine.peerings]
}
