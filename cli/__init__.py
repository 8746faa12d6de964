"""The `hrsync` command line (Typer): the face of every process and operator tool."""
