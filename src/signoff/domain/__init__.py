"""Plain dataclasses and the rules between them. No I/O, no framework imports."""
