# Inputs of the azure-route-server module (seed 003): a virtual machine
# scale set of NVAs announcing over BGP to an Azure Route Server, with no
# peer section, and one small host running the peering reconciler.

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string
}

variable "resource_group_name" {
  description = "Existing resource group that receives every resource (the scale set's events are subscribed to here)."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name; the scale set is <name>, the reconciler host <name>-peerings."
  type        = string
  default     = "nva"
}

variable "route_server_subnet_id" {
  description = "The subnet named RouteServerSubnet (at least /27) in the hub virtual network."
  type        = string
}

variable "nva_subnet_id" {
  description = "Subnet of the scale set's instances and the reconciler host, in the same virtual network as the route server."
  type        = string
}

variable "nva_subnet_prefix" {
  description = "Address prefix of nva_subnet_id (the NSG admits BGP from the route server and the instances' metrics scrape from here)."
  type        = string
}

variable "route_server_subnet_prefix" {
  description = "Address prefix of the RouteServerSubnet (the source of the route server's BGP sessions)."
  type        = string
}

variable "instances" {
  description = "Initial number of NVA instances (the route server takes at most 8 peerings)."
  type        = number
  default     = 2
}

variable "asn" {
  description = "The NVAs' AS number (bgp.asn), not 65515 and not reserved by Azure."
  type        = number
  default     = 65001
}

variable "prefixes" {
  description = "Prefixes every healthy instance announces with next-hop self, e.g. [\"0.0.0.0/0\"]."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "vm_size" {
  description = "VM size of each NVA instance (accelerated networking capable)."
  type        = string
  default     = "Standard_D2s_v5"
}

variable "peerings_vm_size" {
  description = "VM size of the host running baton peerings."
  type        = string
  default     = "Standard_B1s"
}

variable "admin_username" {
  description = "Administrator user on every VM."
  type        = string
  default     = "azureuser"
}

variable "admin_ssh_public_key" {
  description = "SSH public key of the administrator."
  type        = string
}

variable "baton_deb_url" {
  description = "URL of baton's .deb (make deb) every VM installs at first boot."
  type        = string
}

variable "check_command" {
  description = "The instances' local health check (argv): while it fails the instance withdraws its announcements."
  type        = list(string)
  default     = ["/usr/sbin/nft", "list", "table", "inet", "filter"]
}

variable "management_prefix" {
  description = "Source prefix allowed to reach the metrics port of every VM (a monitoring subnet)."
  type        = string
}

variable "webhook_dns_label" {
  description = "DNS label of the reconciler host's public IP: the webhook is https://<label>.<location>.cloudapp.azure.com:8450/."
  type        = string
}

variable "webhook_token" {
  description = "Shared token (at least 16 characters, e.g. openssl rand -hex 24) that Event Grid sends in the webhook URL."
  type        = string
  sensitive   = true
}

variable "webhook_tls_cert" {
  description = "PEM certificate chain for the webhook's DNS name from a publicly trusted CA (Event Grid delivers to trusted https only); empty: no webhook and no Event Grid subscription, the reconciler polls."
  type        = string
  default     = ""
}

variable "webhook_tls_key" {
  description = "PEM private key of webhook_tls_cert."
  type        = string
  default     = ""
  sensitive   = true
}

variable "peerings_interval" {
  description = "How often the reconciler compares the peerings with the scale set even without an event (bgp.peerings.interval)."
  type        = string
  default     = "30s"
}

variable "subscribe_events" {
  description = "Create the Event Grid subscription to the webhook; Event Grid checks the endpoint at creation, so set it on a second apply once baton-peerings runs."
  type        = bool
  default     = false
}
