# baton's ports (README "Security"):
#   port  proto  listener           from
#   5405  udp    heartbeat          the peer
#   5406  tcp    peer channel       the peer
#   5407  tcp    peer link (mTLS)   the peer: session + config sync
#   8444  tcp    HA check port      a load balancer's health check (optional on AWS)
#   8446  tcp    API (token)        management (optional; off by default)
#   9108  tcp    metrics            management
#    179  tcp    BGP                route servers (only with a bgp section)
locals {
  peer_ports = {
    heartbeat = { protocol = "udp", port = 5405 }
    channel   = { protocol = "tcp", port = 5406 }
    link      = { protocol = "tcp", port = 5407 }
  }
  management_ports = { probe = 8444, api = 8446, metrics = 9108 }
}

resource "aws_security_group" "baton" {
  name        = "${var.name}-baton"
  description = "baton NVA pair"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "peer" {
  for_each          = { for k, v in merge([for n, node in local.nodes : { for p, pp in local.peer_ports : "${n}-${p}" => merge(pp, { from = node.inside }) }]...) : k => v }
  security_group_id = aws_security_group.baton.id
  ip_protocol       = each.value.protocol
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = "${each.value.from}/32"
  description       = "baton ${each.key} from the peer"
}

resource "aws_vpc_security_group_ingress_rule" "management" {
  for_each          = local.management_ports
  security_group_id = aws_security_group.baton.id
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = var.management_cidr
  description       = "baton ${each.key} from management"
}

# Forwarded traffic and the cloud APIs.
resource "aws_vpc_security_group_ingress_rule" "forwarded" {
  security_group_id = aws_security_group.baton.id
  ip_protocol       = "-1"
  cidr_ipv4         = var.vpc_cidr
  description       = "traffic the NVA routes"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.baton.id
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
  description       = "forwarded traffic, EC2 and DynamoDB APIs"
}
