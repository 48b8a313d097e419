"""Task plug-ins: what differs between classification, detection and the other tasks xferdiag runs."""
