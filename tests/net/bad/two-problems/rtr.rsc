/ip firewall filter
add chain=forward
bogus
