"""seal_runtime"""
