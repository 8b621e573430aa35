"""bgpnet.speaker"""
