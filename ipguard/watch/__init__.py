"""`ipguard watch`: passive, real-time judging of the ARP and DHCP frames of a link.

scanners.passive   capture (packet socket, kernel filter) and parsing at fixed offsets
watch.judge        claims and offers set against the ledger by ipguard.policies
watch.service      the loop: batches, the ledger (ledger.watching, ledger.findings), alerts
watch.systemd      the service unit and sd_notify
"""
