output "route_server_ips" {
  description = "The route server's two peer addresses (bgp.peers of every instance)."
  value       = azurerm_route_server.rs.virtual_router_ips
}

output "webhook_url" {
  description = "The reconciler's webhook, without its token (Event Grid gets it with ?token=)."
  value       = "https://${azurerm_public_ip.peerings.fqdn}:8450/"
}

output "peerings_identity_principal_id" {
  description = "Principal of the reconciler host's managed identity (holds the peerings custom role)."
  value       = azurerm_user_assigned_identity.peerings.principal_id
}
