# Inputs of the aws-pair module: two NVA instances that steer the VPC's
# route tables (routes section) with a DynamoDB witness.

variable "region" {
  description = "AWS region, e.g. eu-west-1."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name; the nodes are <name>-a and <name>-b."
  type        = string
  default     = "nva"
}

variable "vpc_id" {
  description = "VPC of the appliances."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR of the VPC (the peers' and management's source range for baton's ports)."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the two instances' primary (inside) interfaces, [a, b], one per zone."
  type        = list(string)
}

variable "inside_addresses" {
  description = "Static private IPs of the two instances in their subnets, [a, b]."
  type        = list(string)
}

variable "route_table_ids" {
  description = "Route tables whose routes baton points at the active instance (private subnets)."
  type        = list(string)
}

variable "routed_prefixes" {
  description = "Destinations in those route tables that go through the active NVA."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "ami_id" {
  description = "Debian 12 AMI for the instances (amd64 or arm64 to match instance_type)."
  type        = string
}

variable "instance_type" {
  description = "Instance type of each NVA."
  type        = string
  default     = "c6i.large"
}

variable "key_name" {
  description = "EC2 key pair for SSH to the instances."
  type        = string
  default     = null
}

variable "baton_deb_url" {
  description = "URL of baton's .deb (make deb) the instances install at first boot."
  type        = string
}

variable "pki" {
  description = "Files from `baton keygen --nodes <name>-a,<name>-b` keyed by file name: heartbeat.key, ca.crt, each node's .crt and .key."
  type        = map(string)
  sensitive   = true
}

variable "management_cidr" {
  description = "Source range allowed to reach baton's API and metrics ports."
  type        = string
}
