"""Endpoints, one module per concept. Importing a module registers its routes."""
