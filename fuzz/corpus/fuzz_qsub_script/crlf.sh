#PBS -N crlf
#PBS -l nodes=1:ppn=2
#PBS -vm "img=centos-7.qcow2,vcpus=1"
echo hi
