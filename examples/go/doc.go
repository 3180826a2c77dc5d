// Package examples shows kafka-chaos-proxy in a Go test suite: testcontainers-go starts Apache
// Kafka and the proxy image on one Docker network, the test injects a fault through the
// chaosadmin client and checks that a franz-go consumer rides it out (syncgroup_test.go).
// It needs a Docker engine; README.md says how to run it.
package examples
