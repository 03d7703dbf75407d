"""The one reader and writer of the output tree: the manifest, staged writes, check and diff against
the committed output, and the overlays read back from disk."""
