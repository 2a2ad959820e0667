"""The ledger: registered devices, pools, scan history and the audit trail, in SQL."""
