"""Audio <-> LdmzFile: mel front-end, models, vocoders, chunking, metrics and the `ldmz` command."""
