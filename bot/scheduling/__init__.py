"""Scheduled jobs: the elected scheduler, what a job does, and the chat flow around them."""
