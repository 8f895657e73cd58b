# azure-pair: two NVAs running baton behind an internal and an external
# standard load balancer (seed 000/004). The load balancers' health probe
# is baton's HA check port: only the ACTIVE node answers 200, so both load
# balancers send traffic to it alone. A user-assigned identity carries the
# custom role printed by `baton policy --cloud azure` (for the routes and
# addresses sections, optional with probe steering). The route table
# points the routed prefixes at the internal load balancer.

terraform {
  required_version = ">= 1.5"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = ">= 3.100"
    }
  }
}

locals {
  nodes = {
    a = { name = "${var.name}-a", peer = "${var.name}-b", priority = 150, app = var.app_addresses[0], ha = var.ha_addresses[0], peer_app = var.app_addresses[1], peer_ha = var.ha_addresses[1] }
    b = { name = "${var.name}-b", peer = "${var.name}-a", priority = 100, app = var.app_addresses[1], ha = var.ha_addresses[1], peer_app = var.app_addresses[0], peer_ha = var.ha_addresses[0] }
  }
}

resource "azurerm_user_assigned_identity" "nva" {
  name                = "${var.name}-baton"
  location            = var.location
  resource_group_name = var.resource_group_name
}

# The actions of `baton policy --cloud azure` for a probe-steered pair
# that also rewrites the route table on failover (routes section).
resource "azurerm_role_definition" "baton" {
  name  = "${var.name}-baton"
  scope = data.azurerm_resource_group.rg.id
  permissions {
    actions = [
      "Microsoft.Network/routeTables/read",
      "Microsoft.Network/routeTables/routes/read",
      "Microsoft.Network/routeTables/routes/write",
      "Microsoft.Network/networkInterfaces/read",
    ]
  }
  assignable_scopes = [data.azurerm_resource_group.rg.id]
}

data "azurerm_resource_group" "rg" {
  name = var.resource_group_name
}

resource "azurerm_role_assignment" "baton" {
  scope              = data.azurerm_resource_group.rg.id
  role_definition_id = azurerm_role_definition.baton.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.nva.principal_id
}

resource "azurerm_lb" "internal" {
  name                = "${var.name}-ilb"
  location            = var.location
  resource_group_name = var.resource_group_name
  sku                 = "Standard"
  frontend_ip_configuration {
    name                          = "internal"
    subnet_id                     = var.app_subnet_id
    private_ip_address            = var.ilb_address
    private_ip_address_allocation = "Static"
  }
}

resource "azurerm_public_ip" "external" {
  name                = "${var.name}-elb"
  location            = var.location
  resource_group_name = var.resource_group_name
  allocation_method   = "Static"
  sku                 = "Standard"
}

resource "azurerm_lb" "external" {
  name                = "${var.name}-elb"
  location            = var.location
  resource_group_name = var.resource_group_name
  sku                 = "Standard"
  frontend_ip_configuration {
    name                 = "public"
    public_ip_address_id = azurerm_public_ip.external.id
  }
}

resource "azurerm_lb_backend_address_pool" "internal" {
  name            = "nva"
  loadbalancer_id = azurerm_lb.internal.id
}

resource "azurerm_lb_backend_address_pool" "external" {
  name            = "nva"
  loadbalancer_id = azurerm_lb.external.id
}

# The HA check port: 200 on the active node, 503 on the standby.
resource "azurerm_lb_probe" "internal" {
  name                = "baton"
  loadbalancer_id     = azurerm_lb.internal.id
  protocol            = "Http"
  port                = var.check_port
  request_path        = "/"
  interval_in_seconds = 5
  number_of_probes    = 1
}

resource "azurerm_lb_probe" "external" {
  name                = "baton"
  loadbalancer_id     = azurerm_lb.external.id
  protocol            = "Http"
  port                = var.check_port
  request_path        = "/"
  interval_in_seconds = 5
  number_of_probes    = 1
}

# HA ports: every flow through the active NVA; floating IP keeps the
# original destination.
resource "azurerm_lb_rule" "internal" {
  name                           = "ha-ports"
  loadbalancer_id                = azurerm_lb.internal.id
  protocol                       = "All"
  frontend_port                  = 0
  backend_port                   = 0
  frontend_ip_configuration_name = "internal"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.internal.id]
  probe_id                       = azurerm_lb_probe.internal.id
  enable_floating_ip             = true
}

resource "azurerm_lb_rule" "external" {
  name                           = "https"
  loadbalancer_id                = azurerm_lb.external.id
  protocol                       = "Tcp"
  frontend_port                  = 443
  backend_port                   = 443
  frontend_ip_configuration_name = "public"
  backend_address_pool_ids       = [azurerm_lb_backend_address_pool.external.id]
  probe_id                       = azurerm_lb_probe.external.id
  enable_floating_ip             = true
  disable_outbound_snat          = true
}

resource "azurerm_network_interface" "app" {
  for_each              = local.nodes
  name                  = "${each.value.name}-app"
  location              = var.location
  resource_group_name   = var.resource_group_name
  ip_forwarding_enabled = true
  ip_configuration {
    name                          = "app"
    subnet_id                     = var.app_subnet_id
    private_ip_address_allocation = "Static"
    private_ip_address            = each.value.app
  }
}

resource "azurerm_network_interface" "ha" {
  for_each            = local.nodes
  name                = "${each.value.name}-ha"
  location            = var.location
  resource_group_name = var.resource_group_name
  ip_configuration {
    name                          = "ha"
    subnet_id                     = var.ha_subnet_id
    private_ip_address_allocation = "Static"
    private_ip_address            = each.value.ha
  }
}

resource "azurerm_network_interface_backend_address_pool_association" "internal" {
  for_each                = local.nodes
  network_interface_id    = azurerm_network_interface.app[each.key].id
  ip_configuration_name   = "app"
  backend_address_pool_id = azurerm_lb_backend_address_pool.internal.id
}

resource "azurerm_network_interface_backend_address_pool_association" "external" {
  for_each                = local.nodes
  network_interface_id    = azurerm_network_interface.app[each.key].id
  ip_configuration_name   = "app"
  backend_address_pool_id = azurerm_lb_backend_address_pool.external.id
}

resource "azurerm_linux_virtual_machine" "nva" {
  for_each              = local.nodes
  name                  = each.value.name
  location              = var.location
  resource_group_name   = var.resource_group_name
  size                  = var.vm_size
  admin_username        = var.admin_username
  network_interface_ids = [azurerm_network_interface.app[each.key].id, azurerm_network_interface.ha[each.key].id]
  zone                  = each.key == "a" ? "1" : "2"
  admin_ssh_key {
    username   = var.admin_username
    public_key = var.admin_ssh_public_key
  }
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.nva.id]
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
  # Templates get node (one of local.nodes) and module variables under
  # their own names; the test renders them the same way.
  custom_data = base64encode(templatefile("${path.module}/user-data.tftpl", {
    node          = each.value
    baton_yaml    = templatefile("${path.module}/baton.yaml.tftpl", { node = each.value, check_port = var.check_port })
    pki           = var.pki
    baton_deb_url = var.baton_deb_url
  }))
}

resource "azurerm_route_table" "spokes" {
  name                = "${var.name}-via-nva"
  location            = var.location
  resource_group_name = var.resource_group_name
}

resource "azurerm_route" "via_nva" {
  for_each               = toset(var.routed_prefixes)
  name                   = "via-nva-${replace(replace(each.value, ".", "-"), "/", "_")}"
  resource_group_name    = var.resource_group_name
  route_table_name       = azurerm_route_table.spokes.name
  address_prefix         = each.value
  next_hop_type          = "VirtualAppliance"
  next_hop_in_ip_address = var.ilb_address
}
