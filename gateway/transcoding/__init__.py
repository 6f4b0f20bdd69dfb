"""HTTP/JSON <-> gRPC transcoding driven only by descriptors (the role grpc-gateway plays in
Go): routes from google.api.http rules, the protobuf JSON mapping, the standard status
mapping and an OpenAPI document. Nothing here knows a GaitPay service by name."""
