"""The 3-D expert: point clouds compared with reference scans in 3-D (see expert.py)."""
