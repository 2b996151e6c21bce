//! keepalived.conf, the VRRP part: lexer, parser, typed configuration.
