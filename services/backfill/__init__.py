"""``churnwatch backfill``: months of historic events and account profiles from files straight into Kafka.

sources.py turns a line into an event or a reject (ingest's validation), mapping.py turns CSV rows into events
or profiles, reading.py opens, probes, scans and reads inputs, ordering.py checks time order and sorts
externally when it must, reader.py runs the read side in its own process, loader.py produces to Kafka,
progress.py shows how far it got, cli.py is the command line.
"""
