"""The Textual time-travel debugger: replay mode over a log, live mode over a recorder."""
