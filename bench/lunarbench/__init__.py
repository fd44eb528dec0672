"""lunar's benchmark driver: lunar and tgt on the same backing device, the same client matrix
against each, interleaved, with results as JSON, a markdown table and a PNG chart.

Modules: ``cli`` (the command line and the run), ``backing`` (the backing device), ``targets``
(tgtd and lunard), ``clients`` (fio, iscsi-perf, lunar-load: commands and output parsers),
``procstat`` (CPU time and memory from /proc), ``matrix`` (the cells of a run), ``report``
(JSON, markdown, chart, goals).
"""
