/ppp secret
add name=u password=<redacted>
