// Package tapirv1 is tapir's wire schema in one folder: the protobuf
// definition (tapir.proto, package tapir.v1), the Go that protoc generates
// from it (tapir.pb.go, tapir_grpc.pb.go) and the converters between it and
// tapir's own types (record.go, enrichment.go).
//
// Regenerate with `make generate`; `make check-generate` fails when the
// committed code is stale.
package tapirv1

//go:generate protoc --plugin=protoc-gen-go=../../bin/protoc-gen-go --plugin=protoc-gen-go-grpc=../../bin/protoc-gen-go-grpc -I .. --go_out=.. --go_opt=paths=source_relative --go-grpc_out=.. --go-grpc_opt=paths=source_relative tapirv1/tapir.proto
