package s3_test

import (
	"context"
	"fmt"

	"github.com/mftflow/mftflow/connectors/s3"
	"github.com/mftflow/mftflow/pipeline"
)

// A sink for an S3-compatible server, built from Go. In a flow file the same
// settings are the s3 sink's fields.
func ExampleNewSink() {
	sink, err := s3.NewSink(context.Background(), s3.SinkConfig{
		ClientConfig: s3.ClientConfig{
			Bucket:          "outgoing",
			Endpoint:        "http://127.0.0.1:9000",
			PathStyle:       true,
			AccessKeyID:     "minio",
			SecretAccessKey: "minio-secret",
		},
		Prefix:    "partner-b",
		Key:       "{dir}/{stem}{ext}",
		PartSize:  16 << 20,
		Overwrite: s3.OverwriteSkip,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	key, _ := sink.Key(pipeline.File{Name: "2024/orders.csv"})
	fmt.Println(key)
	// Output: partner-b/2024/orders.csv
}

// Registering the connector makes "s3" usable in flows built from a registry.
func ExampleRegister() {
	reg := pipeline.NewRegistry()
	if err := s3.Register(reg); err != nil {
		fmt.Println(err)
		return
	}
	spec, _ := reg.Lookup(pipeline.KindSink, "s3")
	f, _ := spec.Field("secret_access_key")
	fmt.Println(spec.Name, f.Secret)
	// Output: s3 true
}
