"""The one vocabulary of kinds of data: every record, every descriptor and every plug-in spells a kind with these."""

IMAGE, TABLE, TEXT = "image", "table", "text"
KINDS = (IMAGE, TABLE, TEXT)
