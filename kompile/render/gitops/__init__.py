"""Kubernetes objects of the GitOps tools: Argo CD and Flux objects that sync the overlays."""
