"""Security tooling: least-privilege Redis ACL users (`acl`) rendered as a Redis ACL file."""
