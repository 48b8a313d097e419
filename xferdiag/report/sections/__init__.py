"""One module per section of the report: each turns what the run directory holds into what its template block shows.

A section builder takes the files already read (or a :class:`~xferdiag.rundir.RunDir` for the arrays
only it needs) and returns a plain dict for ``templates/run.html``; it never writes. Thresholds
and the sentences that put numbers into words come from :mod:`xferdiag.report.interpret`.
"""
