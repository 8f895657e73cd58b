output "instance_ids" {
  description = "The two NVA instances."
  value       = { for k, i in aws_instance.nva : k => i.id }
}

output "inside_enis" {
  description = "The instances' inside ENIs (routes.aws.local_eni / peer_eni)."
  value       = { for k, e in aws_network_interface.inside : k => e.id }
}

output "witness_table" {
  description = "DynamoDB table of the witness lease."
  value       = aws_dynamodb_table.witness.name
}
