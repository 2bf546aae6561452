// Package proto holds tapir's protobuf schema (tapir/v1/tapir.proto). The
// generated Go lives in package tapirv1; regenerate with `make generate`.
package proto

//go:generate protoc --plugin=protoc-gen-go=../bin/protoc-gen-go --plugin=protoc-gen-go-grpc=../bin/protoc-gen-go-grpc -I . --go_out=. --go_opt=module=github.com/tapir-sensor/tapir/proto --go-grpc_out=. --go-grpc_opt=module=github.com/tapir-sensor/tapir/proto tapir/v1/tapir.proto
