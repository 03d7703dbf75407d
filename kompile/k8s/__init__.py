"""One builder per Kubernetes kind. Builders take plain values and return plain dicts, keys in the
conventional order (apiVersion, kind, metadata, spec); they know Kubernetes, not kompile's spec."""
