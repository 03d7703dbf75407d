"""One builder per Kubernetes kind. Builders take plain values and return plain dicts, keys in the
conventional order (apiVersion, kind, metadata, spec); they know Kubernetes, not kompile's spec.

Objects are never changed once built (patches and transformers return new objects that share what
they leave alone), so builders may share constant parts between objects."""
