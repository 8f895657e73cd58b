# baton's ports (README "Security"): what each listener is, who may reach it.
#   port  proto  listener             from
#   5405  udp    heartbeat            the peer (both subnets)
#   5406  tcp    peer channel         the peer (HA subnet)
#   5407  tcp    peer link (mTLS)     the peer (HA subnet): session + config sync
#   8444  tcp    HA check port        the Azure load balancer (AzureLoadBalancer tag)
#   8446  tcp    API (token)          management prefix (optional; off by default)
#   9108  tcp    metrics              management prefix
#    179  tcp    BGP                  route servers (only with a bgp section)
#   8450  tcp    peerings webhook     Event Grid (only with bgp.peerings)
locals {
  peer_rules = {
    heartbeat = { priority = 200, protocol = "Udp", port = "5405" }
    channel   = { priority = 210, protocol = "Tcp", port = "5406" }
    link      = { priority = 220, protocol = "Tcp", port = "5407" }
  }
  management_rules = {
    api     = { priority = 300, port = "8446" }
    metrics = { priority = 310, port = "9108" }
  }
}

resource "azurerm_network_security_group" "nva" {
  name                = "${var.name}-baton"
  location            = var.location
  resource_group_name = var.resource_group_name
}

resource "azurerm_network_security_rule" "peer" {
  for_each                     = local.peer_rules
  name                         = "baton-${each.key}"
  priority                     = each.value.priority
  direction                    = "Inbound"
  access                       = "Allow"
  protocol                     = each.value.protocol
  source_port_range            = "*"
  destination_port_range       = each.value.port
  source_address_prefixes      = concat(var.app_addresses, var.ha_addresses)
  destination_address_prefixes = concat(var.app_addresses, var.ha_addresses)
  resource_group_name          = var.resource_group_name
  network_security_group_name  = azurerm_network_security_group.nva.name
}

resource "azurerm_network_security_rule" "probe" {
  name                        = "baton-probe"
  priority                    = 230
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = tostring(var.check_port)
  source_address_prefix       = "AzureLoadBalancer"
  destination_address_prefix  = "*"
  resource_group_name         = var.resource_group_name
  network_security_group_name = azurerm_network_security_group.nva.name
}

resource "azurerm_network_security_rule" "management" {
  for_each                    = local.management_rules
  name                        = "baton-${each.key}"
  priority                    = each.value.priority
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = each.value.port
  source_address_prefix       = var.management_prefix
  destination_address_prefix  = "*"
  resource_group_name         = var.resource_group_name
  network_security_group_name = azurerm_network_security_group.nva.name
}

resource "azurerm_network_interface_security_group_association" "app" {
  for_each                  = local.nodes
  network_interface_id      = azurerm_network_interface.app[each.key].id
  network_security_group_id = azurerm_network_security_group.nva.id
}

resource "azurerm_network_interface_security_group_association" "ha" {
  for_each                  = local.nodes
  network_interface_id      = azurerm_network_interface.ha[each.key].id
  network_security_group_id = azurerm_network_security_group.nva.id
}
