"""Batch and chunked upload: `POST /assets/batch`, its config and progress. (In progress.)"""
