# baton's ports (README "Security"): what each listener is, who may reach it.
#   port  proto  listener             from
#    179  tcp    BGP                  the route server (RouteServerSubnet); baton dials out
#   8444  tcp    HA check port        the instance itself (application health extension) and
#                                       the reconciler host (bgp.peerings.health), the NVA subnet
#   9108  tcp    metrics              management prefix
#   8450  tcp    peerings webhook     Event Grid (AzureEventGrid tag), reconciler host only
# No heartbeat, channel or link ports: the instances have no peer.

resource "azurerm_network_security_group" "nva" {
  name                = "${var.name}-baton"
  location            = var.location
  resource_group_name = var.resource_group_name
}

resource "azurerm_network_security_rule" "bgp" {
  name                        = "baton-bgp"
  priority                    = 200
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "179"
  source_address_prefix       = var.route_server_subnet_prefix
  destination_address_prefix  = var.nva_subnet_prefix
  resource_group_name         = var.resource_group_name
  network_security_group_name = azurerm_network_security_group.nva.name
}

resource "azurerm_network_security_rule" "health" {
  name                        = "baton-health"
  priority                    = 210
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "8444"
  source_address_prefix       = var.nva_subnet_prefix
  destination_address_prefix  = var.nva_subnet_prefix
  resource_group_name         = var.resource_group_name
  network_security_group_name = azurerm_network_security_group.nva.name
}

resource "azurerm_network_security_rule" "metrics" {
  name                        = "baton-metrics"
  priority                    = 310
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "9108"
  source_address_prefix       = var.management_prefix
  destination_address_prefix  = "*"
  resource_group_name         = var.resource_group_name
  network_security_group_name = azurerm_network_security_group.nva.name
}

resource "azurerm_network_security_group" "peerings" {
  name                = "${var.name}-peerings"
  location            = var.location
  resource_group_name = var.resource_group_name
}

resource "azurerm_network_security_rule" "webhook" {
  name                        = "baton-peerings-webhook"
  priority                    = 200
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = "8450"
  source_address_prefix       = "AzureEventGrid"
  destination_address_prefix  = "*"
  resource_group_name         = var.resource_group_name
  network_security_group_name = azurerm_network_security_group.peerings.name
}

resource "azurerm_network_interface_security_group_association" "peerings" {
  network_interface_id      = azurerm_network_interface.peerings.id
  network_security_group_id = azurerm_network_security_group.peerings.id
}
