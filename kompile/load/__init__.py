"""Reading the repo: its environments/ (with positions), the merge of each environment with what it
extends, and git facts (remotes, revisions)."""
