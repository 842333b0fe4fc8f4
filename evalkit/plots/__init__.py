"""Matplotlib figures over layer results, one submodule per layer; they draw and never run a tool."""
