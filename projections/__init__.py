"""Read models: followers of the notification log, each owning its tables and its position."""
