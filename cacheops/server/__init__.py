"""The server layer: connecting (URL, profile, TLS, ACL), what the server is and has (serverinfo,
indexes), the streaming scan engine and its Lua, read-ahead, and the embedded local server.
Imports only the base modules (errors, exit_codes, paths, config, ownkeys).
"""
