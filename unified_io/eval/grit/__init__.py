"""The GRIT benchmark: its tasks, prompts, scoring and leaderboard runner."""
