// Package k8s holds tapir's Kubernetes manifests (kustomize: sensor
// DaemonSet, collector Deployment, Service and HorizontalPodAutoscaler,
// ConfigMaps from sensor.yaml and collector.yaml). It has no code: its test
// renders the kustomization with the kustomize API and decodes every
// object strictly into the Kubernetes API types.
package k8s
