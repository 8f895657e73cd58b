# aws-pair: two NVA instances running baton. The active instance owns the
# routes of the private route tables (baton rewrites them with
# ec2:ReplaceRoute on failover) and holds the lease in a DynamoDB witness
# table, so that a partitioned pair never has two writers. The instance
# profile carries exactly the actions `baton policy --cloud aws` prints
# for this configuration.

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region
}

data "aws_caller_identity" "me" {}

locals {
  nodes = {
    a = { name = "${var.name}-a", peer = "${var.name}-b", priority = 150, inside = var.inside_addresses[0], peer_inside = var.inside_addresses[1], index = 0 }
    b = { name = "${var.name}-b", peer = "${var.name}-a", priority = 100, inside = var.inside_addresses[1], peer_inside = var.inside_addresses[0], index = 1 }
  }
  table_arns = [for id in var.route_table_ids : "arn:aws:ec2:${var.region}:${data.aws_caller_identity.me.account_id}:route-table/${id}"]
}

# The witness: one item, partition key "id" (witness.dynamodb.table).
resource "aws_dynamodb_table" "witness" {
  name         = "${var.name}-baton-witness"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"
  attribute {
    name = "id"
    type = "S"
  }
}

resource "aws_network_interface" "inside" {
  for_each          = local.nodes
  subnet_id         = var.subnet_ids[each.value.index]
  private_ips       = [each.value.inside]
  security_groups   = [aws_security_group.baton.id]
  source_dest_check = false # an NVA forwards traffic that is not its own
  tags              = { Name = "${each.value.name}-inside" }
}

resource "aws_iam_role" "nva" {
  name = "${var.name}-baton"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

# `baton policy --cloud aws` for this configuration: the routes section,
# its fencing tag and the witness (go test ./deploy/ compares the actions).
resource "aws_iam_role_policy" "baton" {
  name = "baton"
  role = aws_iam_role.nva.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Sid = "BatonDescribe", Effect = "Allow", Action = ["ec2:DescribeRouteTables"], Resource = ["*"] },
      { Sid = "BatonRoutes", Effect = "Allow", Action = ["ec2:ReplaceRoute"], Resource = local.table_arns },
      # With a witness every route write records its fencing token in a
      # tag of the table: that tag and nothing else.
      {
        Sid       = "BatonFencing", Effect = "Allow", Action = ["ec2:CreateTags"], Resource = local.table_arns,
        Condition = { "ForAllValues:StringEquals" = { "aws:TagKeys" = "baton:fencing-token" } }
      },
      # The lease item: conditional updates and reads, nothing else.
      {
        Sid       = "BatonWitness", Effect = "Allow", Action = ["dynamodb:GetItem", "dynamodb:UpdateItem"], Resource = [aws_dynamodb_table.witness.arn],
        Condition = { "ForAllValues:StringEquals" = { "dynamodb:LeadingKeys" = ["baton"] } }
      },
    ]
  })
}

resource "aws_iam_instance_profile" "nva" {
  name = "${var.name}-baton"
  role = aws_iam_role.nva.name
}

resource "aws_instance" "nva" {
  for_each             = local.nodes
  ami                  = var.ami_id
  instance_type        = var.instance_type
  key_name             = var.key_name
  iam_instance_profile = aws_iam_instance_profile.nva.name
  network_interface {
    network_interface_id = aws_network_interface.inside[each.key].id
    device_index         = 0
  }
  metadata_options {
    http_tokens = "required" # IMDSv2 only
  }
  # Templates get node (one of local.nodes) and module variables under
  # their own names; the test renders them the same way.
  user_data_base64 = base64encode(templatefile("${path.module}/user-data.tftpl", {
    node = each.value
    baton_yaml = templatefile("${path.module}/baton.yaml.tftpl", {
      node            = each.value
      region          = var.region
      route_table_ids = var.route_table_ids
      routed_prefixes = var.routed_prefixes
      local_eni       = aws_network_interface.inside[each.key].id
      peer_eni        = aws_network_interface.inside[each.key == "a" ? "b" : "a"].id
      witness_table   = aws_dynamodb_table.witness.name
    })
    pki           = var.pki
    baton_deb_url = var.baton_deb_url
  }))
  tags = { Name = each.value.name }
}

# The routes start at nva-a; baton moves them to whichever node is active.
resource "aws_route" "via_nva" {
  for_each               = { for p in setproduct(var.route_table_ids, var.routed_prefixes) : "${p[0]}:${p[1]}" => p }
  route_table_id         = each.value[0]
  destination_cidr_block = each.value[1]
  network_interface_id   = aws_network_interface.inside["a"].id
  lifecycle {
    ignore_changes = [network_interface_id] # baton owns the target
  }
}
