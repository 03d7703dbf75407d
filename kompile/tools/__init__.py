"""Tools over the specs: edit (set-image, promote), explain, init."""
