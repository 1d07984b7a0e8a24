#include <stdio.h>
int main(void)
{
	fputs("jobfs-fs: not built yet\n", stderr);
	return 1;
}
