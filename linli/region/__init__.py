"""The regional tier: stateless consumers into PostgreSQL, the regional dashboard, signed broadcasts.

`linli region ...` (linli/region/cli.py). The gateway side is gateway/uplink/.
"""
