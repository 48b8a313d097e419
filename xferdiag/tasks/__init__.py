"""Task plug-ins: what differs between classification, detection and text, behind one seam."""
