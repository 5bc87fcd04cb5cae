/* samlgw-config-reference: prints docs/config.md from the settings table. */
#include "config.h"

#include <stdio.h>

int main(void)
{
	config_write_reference(stdout);
	return ferror(stdout) ? 1 : 0;
}
