# Node 2 of the compose file's 3-node OpenBao cluster (docker-compose.ha.yml).
storage "raft" {
  path    = "/openbao/data"
  node_id = "bao-2"
  retry_join { leader_api_addr = "http://bao-1:8200" }
  retry_join { leader_api_addr = "http://bao-2:8200" }
  retry_join { leader_api_addr = "http://bao-3:8200" }
}
listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true
}
api_addr      = "http://bao-2:8200"
cluster_addr  = "http://bao-2:8201"
disable_mlock = true
