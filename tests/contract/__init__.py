"""Contract tests for the JS fake server: sessions recorded against the real Hub (record.py)."""
