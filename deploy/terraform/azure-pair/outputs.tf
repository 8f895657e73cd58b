output "internal_lb_address" {
  description = "Frontend IP of the internal load balancer (the route table's next hop)."
  value       = var.ilb_address
}

output "external_lb_public_ip" {
  description = "Public IP of the external load balancer."
  value       = azurerm_public_ip.external.ip_address
}

output "route_table_id" {
  description = "Route table to associate with the spoke subnets."
  value       = azurerm_route_table.spokes.id
}

output "identity_principal_id" {
  description = "Principal of the NVAs' managed identity (holds the baton custom role)."
  value       = azurerm_user_assigned_identity.nva.principal_id
}
