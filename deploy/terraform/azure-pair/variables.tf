# Inputs of the azure-pair module (seed 000/004): two NVAs behind an
# internal and an external standard load balancer whose health probe is
# baton's HA check port; a route table pointing at the internal LB.

variable "location" {
  description = "Azure region, e.g. westeurope."
  type        = string
}

variable "resource_group_name" {
  description = "Existing resource group that receives every resource."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name; the nodes are <name>-a and <name>-b."
  type        = string
  default     = "nva"
}

variable "app_subnet_id" {
  description = "Subnet of the NVAs' first NIC (application traffic, LB backends, heartbeats)."
  type        = string
}

variable "ha_subnet_id" {
  description = "Subnet of the NVAs' second NIC (heartbeats, peer channel, peer link)."
  type        = string
}

variable "app_addresses" {
  description = "Static private IPs of the two NVAs in the application subnet, [a, b]."
  type        = list(string)
}

variable "ha_addresses" {
  description = "Static private IPs of the two NVAs in the HA subnet, [a, b]."
  type        = list(string)
}

variable "ilb_address" {
  description = "Frontend IP of the internal load balancer in the application subnet (the next hop of the route table)."
  type        = string
}

variable "routed_prefixes" {
  description = "Destination prefixes the route table sends through the NVAs, e.g. [\"0.0.0.0/0\"]."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "vm_size" {
  description = "VM size of each NVA (accelerated networking capable)."
  type        = string
  default     = "Standard_D2s_v5"
}

variable "admin_username" {
  description = "Administrator user on both VMs."
  type        = string
  default     = "azureuser"
}

variable "admin_ssh_public_key" {
  description = "SSH public key of the administrator."
  type        = string
}

variable "baton_deb_url" {
  description = "URL of baton's .deb (make deb) the VMs install at first boot."
  type        = string
}

variable "pki" {
  description = "Files from `baton keygen --nodes <name>-a,<name>-b`: heartbeat.key, ca.crt and each node's .crt and .key, keyed by file name (mark the variable file sensitive)."
  type        = map(string)
  sensitive   = true
}

variable "management_prefix" {
  description = "Source prefix allowed to reach the API and metrics ports (a jump host or monitoring subnet)."
  type        = string
}

variable "check_port" {
  description = "baton's HA check port (probe.listen); the load balancers' health probe."
  type        = number
  default     = 8444
}
